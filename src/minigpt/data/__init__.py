"""Text in, batches out: reading sources, cleaning, tokenizers, encoding into token shards
(``prepare``), and the memmap dataset and prefetcher the trainer reads batches from."""
