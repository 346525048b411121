# As `default`, answering the OpenAI Responses API (`POST /v1/responses`), which LiteLLM passes to an
# `openai/` origin's own `/v1/responses`.
MODEL = "openai/*"
API_BASE = "http://{{upstream}}/v1"
ROUTE = "/v1/responses"
