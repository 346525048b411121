# Stock ATS as a reverse proxy: built-in defaults for every record (caching on but only with an explicit
# lifetime, no compression plugin, transaction_no_activity_timeout_in/_out 30 s).
