// http-proxy has no idle cut by default; `proxyTimeout` (the upstream socket's idle timeout) set to 1 s
// so a case can show what one does to a stream.
proxyOptions.proxyTimeout = 1000;
