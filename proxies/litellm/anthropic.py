# LiteLLM's proxy in front of an Anthropic Messages origin (`anthropic/` models, any name), answering
# `POST /v1/messages` in the same format.
MODEL = "anthropic/*"
API_BASE = "http://{{upstream}}"
ROUTE = "/v1/messages"
