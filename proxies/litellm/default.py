# LiteLLM's proxy in front of an OpenAI-compatible origin (`openai/` models, any name: `model_name: "*"`),
# answering Chat Completions: the passthrough most deployments run. Every other setting is LiteLLM's
# default.
MODEL = "openai/*"
API_BASE = "http://{{upstream}}/v1"
ROUTE = "/v1/chat/completions"
