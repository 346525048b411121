# The 30 s origin-side idle cut (`transaction_no_activity_timeout_out`) scaled down to 1 s so a case can
# show it quickly. The client side (`_in`) keeps its 30 s.
CONFIG proxy.config.http.transaction_no_activity_timeout_out INT 1
