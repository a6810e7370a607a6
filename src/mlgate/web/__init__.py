"""The web dashboard (for the team, under /ui) and the consumer portal (under /portal).

Server-rendered pages over the same use cases and the same authorization as the API: every page
calls `api.authorize` with its action, and state changes go through the same service functions
the routes and the CLI call. A login session lives in an HttpOnly cookie; every form carries a
CSRF token bound to that session. Charts are SVG drawn on the server (web/charts.py), so a page
needs no script but the small one in static/app.js (live job progress, confirmations).
"""
