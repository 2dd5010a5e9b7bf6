"""`rge export`: a model artifact as a Hub-ready folder (merged weights, processor and tokenizer with `<emb>`,
the eval's decoding in generation_config.json, a model card), optionally pushed to the Hugging Face Hub."""
