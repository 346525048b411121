# Base VCL every ssegate Varnish hop runs with. ssegate fills in the double-brace placeholders; the profile's
# own VCL (proxies/varnish/<config>.vcl) replaces the {{config}} line at top level, so a profile may add its
# own `sub vcl_*` bodies: Varnish concatenates them after the ones below and then falls through to the
# builtin VCL (`varnishd -x builtin`). Nothing here changes how Varnish proxies or caches: the frame only
# names the origin and answers ssegate's readiness check. Listening address, working directory (under the
# prefix), storage and the CLI port are given on the command line.
vcl 4.1;

# `.host` accepts "address:port", so {{upstream}} needs no host/port split.
backend default {
    .host = "{{upstream}}";
}

sub vcl_recv {
    # ssegate's readiness check: this exact nonce proves that this varnishd, not another process that
    # raced for the port, is answering.
    if (req.url == "/__ssegate_ready") {
        return (synth(200, "ready"));
    }
}

sub vcl_synth {
    if (req.url == "/__ssegate_ready") {
        set resp.http.Content-Type = "text/plain";
        set resp.body = "{{nonce}}";
        return (deliver);
    }
}

{{config}}
