"""Text and tokens: built-in languages, corpus reading and cleaning, the token cache,
cloned and real languages with their vocabularies, parallel pairs and probe tasks."""
