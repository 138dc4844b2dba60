"""The Recognition v2 JSON API: one router module per resource, kept thin (parse the
request, call ``data`` / ``uploads`` / ``ml``, answer), plus the token auth and the
answer helpers they share."""
