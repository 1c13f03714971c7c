"""What a trained model is measured by: perplexity (evaluate), cross-lingual alignment,
the downstream probe, and the monolingual scaling law with TEff (scaling; no torch)."""
