"""The gateway: what every request passes through (request ids and headers, bodies, bearer
tokens, endpoint contracts, household scope, rate limits, errors and the OpenAPI document)."""
