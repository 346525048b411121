# Bodies larger than 1 byte are streamed (`stream_large_bodies=1`), i.e. every body: mitmproxy's own
# advice for long-lived responses such as event streams.
OPTIONS["stream_large_bodies"] = "1"
