"""What every HTML page of fluxfleet shares (the status page, a run's timeline): the start of its style sheet — the
colour scheme, the type, headings, links, and the skip link out of sight until a keyboard user reaches it, the first
stop of Tab. Each page adds its own rules after these."""

BASE_CSS = (
    ":root{color-scheme:light}"
    "*{box-sizing:border-box}"
    "body{margin:0;padding:1rem 1.5rem 3rem;color:#1f2328;background:#fff;"
    'font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Open Sans","DejaVu Sans",sans-serif}'
    "h1{font-size:1.4rem;margin:0 0 .25rem}"
    "h2{font-size:1.1rem;margin:1.5rem 0 .5rem}"
    "h3{font-size:1rem;margin:0}"
    "a{color:#0550ae}"
    ".skip{position:absolute;left:1rem;top:-10rem;padding:.4rem .8rem;background:#fff;border:2px solid #0550ae;"
    "border-radius:4px;z-index:3}"
    ".skip:focus{top:1rem}"
)
