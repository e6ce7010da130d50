"""API keys: issued keys from the registry file, and pass-through keys verified with the provider."""
