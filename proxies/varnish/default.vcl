# Stock Varnish: the builtin VCL decides everything. Streaming (`beresp.do_stream`) is on, responses
# without no-cache/no-store/private/Set-Cookie are cached for default_ttl (120 s) and coalesced onto one
# backend fetch, between_bytes_timeout 60 s towards the origin, send_timeout 600 s towards the client.
