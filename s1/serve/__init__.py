"""`s1 serve`: an OpenAI-compatible HTTP server with budget forcing (`app`), request validation
(`schema`, `policy`), batching (`engine`), plain continuations (`plain`) and streaming (`stream`)."""
