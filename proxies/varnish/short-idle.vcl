# The 60 s backend idle cut (`between_bytes_timeout`) scaled down to 1 s so a case can show it quickly.
# Everything else is the builtin VCL.
sub vcl_backend_fetch {
    set bereq.between_bytes_timeout = 1s;
}
