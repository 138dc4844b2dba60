"""The web interface (docs/web.md): HTML pages rendered on the server from Jinja2
templates, htmx for progressive enhancement, and the vendored assets (static/vendor/)
that these pages, ``/docs`` and ``/redoc`` load from the server itself."""
