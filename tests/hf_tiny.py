"""Tiny Hugging Face pipelines built here: a config with random weights and a tokenizer
trained on a few sentences with the tokenizers library. Nothing comes from the hub."""

from __future__ import annotations

import os
from typing import Any

TEXTS = ["good film", "bad film", "a good day", "a bad day", "great acting", "terrible plot"]
SAMPLE = ["good film", "a bad day"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _quiet() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def wordpiece_tokenizer(max_length: int = 32) -> Any:
    """A BERT-style fast tokenizer ([CLS] text [SEP]) trained on TEXTS."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(TEXTS * 5, trainers.WordPieceTrainer(vocab_size=60,
                                                                 special_tokens=SPECIAL))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length,
    )


def _bert_config(tokenizer: Any, **extra: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, **extra,
    )


def pipeline(task: str) -> Any:
    """A tiny pipeline for ``task`` with seeded random weights."""
    import torch
    import transformers as tf

    _quiet()
    torch.manual_seed(0)
    tokenizer = wordpiece_tokenizer()
    labels = {"id2label": {0: "NEGATIVE", 1: "POSITIVE"},
              "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}
    if task == "text-classification":
        model = tf.BertForSequenceClassification(_bert_config(tokenizer, **labels))
    elif task == "token-classification":
        tags = {"id2label": {0: "O", 1: "B-X", 2: "I-X"}, "label2id": {"O": 0, "B-X": 1, "I-X": 2}}
        model = tf.BertForTokenClassification(_bert_config(tokenizer, **tags))
    elif task == "feature-extraction":
        model = tf.BertModel(_bert_config(tokenizer))
    elif task == "text-generation":
        config = tf.GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1,
                               n_head=2, bos_token_id=2, eos_token_id=3, pad_token_id=0)
        model = tf.GPT2LMHeadModel(config)
        model.generation_config.max_new_tokens = 4
        model.generation_config.do_sample = False
        model.generation_config.pad_token_id = 0
    else:
        raise ValueError(task)
    return tf.pipeline(task, model=model.eval(), tokenizer=tokenizer, device="cpu")
