"""Workarounds of defects in the pinned Merlin stack, in one place (bottom layer: imports no t4r_dmt module).

Each module names the version it applies to and its entry in ``docs/STACK_NOTES.md``; when a pin moves,
this is the list to re-check.

========================= ======================== ==============================================================
module                    applies to               defect
========================= ======================== ==============================================================
``t4r_recall``            transformers4rec 23.12   ``RecallAt`` crashes on a batch with one relevant row
``merlin_loader``         merlin-dataloader 23.08  a list column empty in every row of a batch fails to batch
``merlin_executor``       merlin-core 23.08        dtype capture fails on leafless list columns and walks list
                                                   rows in Python; nodes run once per downstream path and
                                                   every node copies every column (``use_list_safe_executor``
                                                   swaps it in)
``merlin_schema``         merlin-core 23.08        a text column is written to schema.pbtxt without a type
========================= ======================== ==============================================================

Workarounds that are subclasses of a stack class stay beside the code that uses them (they are features of
that code, not patches): ``preprocess.session_categorify.NullSafeCategorify`` (Categorify on all-null columns),
``preprocess.ops.history_operator`` (merlin.dag runs a node once per downstream path),
``preprocess.ops.BlockLogOp`` / ``BlockNormalize`` (NVTabular's LogOp / Normalize copy a shared block per column),
``model.next_item.body.CausalXLNetModel`` (T4R's XLNet CLM attends to its labels),
``model.next_item.rtd.ReplacedTokenDetectionHead`` (T4R's RTD trains plain MLM) and ``model.trainer.DMTTrainer``
(T4R's scheduler ignores ``warmup_ratio``; HF's optimizer decays embeddings); ``training.dense_loader``
replaces the merlin loader by default. Swaps into stock modules are config options, never silent defaults:
``DMTConfig.fast_dropout`` puts ``model.dropout.BitsDropout`` into every layer, HF encoders included.
"""
