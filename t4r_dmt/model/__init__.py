"""The DMT model (Gu et al., CIKM 2020) as Transformers4Rec blocks.

Plain ``nn.Module`` blocks with explicit sizes (``DeepInterestTransformer``, ``MultiBehaviorEncoder``, ``MMoE``,
``BiasTower``, ``MultiTaskLoss``, assembled in ``RankingNetwork``) are adapted to T4R in one place (``t4r.py``).
The same network runs the Table 1 baselines (DNN, DIN, DIEN) when ``config.interest.kind`` names their
interest extractor. The session-based next-item models are in ``t4r_dmt.model.next_item``.

Train it with T4R's Trainer (``DMTTrainer`` renames metrics to ``eval_auc_click`` ... and turns them on, decays
the dense weights only and honours ``warmup_ratio``)::

    import torch
    from transformers4rec.config.trainer import T4RecTrainingArguments
    from t4r_dmt.model import DMTTrainer, build_model
    from t4r_dmt.presets import load_preset

    torch.manual_seed(0)
    config = load_preset("dmt")
    model = build_model(schema, config)
    args = T4RecTrainingArguments(
        output_dir=out_dir, max_sequence_length=model.max_sequence_length, per_device_train_batch_size=512,
        per_device_eval_batch_size=1024, learning_rate=1e-3, num_train_epochs=1, no_cuda=True, report_to=[],
        weight_decay=config.regularisation.weight_decay,   # the preset's recipe (t4r-dmt train passes it)
    )
    trainer = DMTTrainer(model=model, args=args, schema=schema,
                         train_dataset_or_path="ranking/0001/train.parquet",
                         eval_dataset_or_path="ranking/0002/valid.parquet")
    trainer.train()
    metrics = trainer.evaluate()          # eval_auc_click, eval_auc_order, eval_loss
    scores = trainer.predict("ranking/0002/test.parquet").predictions   # {"p_click", "p_order", "score"}
    model.save(out_dir)                   # tr.Model.load(out_dir) gives identical predictions

``tests/test_model_trainer.py::test_trainer_cycle`` runs exactly this on a tiny fixture.
"""

from __future__ import annotations

from t4r_dmt.model.build import build_model
from t4r_dmt.model.config import (
    BiasConfig,
    CatalogueConfig,
    DMTConfig,
    EmbeddingConfig,
    LossConfig,
    MultiTaskConfig,
    RegularisationConfig,
    TransformerConfig,
)
from t4r_dmt.model.export import export_torchscript
from t4r_dmt.model.features import FeatureSpec
from t4r_dmt.model.network import RankingNetwork, RankingOutput
from t4r_dmt.model.t4r import DMTBody, DMTHead, RankingTask
from t4r_dmt.model.trainer import DMTTrainer

__all__ = [
    "BiasConfig",
    "DMTBody",
    "DMTConfig",
    "DMTHead",
    "DMTTrainer",
    "EmbeddingConfig",
    "FeatureSpec",
    "LossConfig",
    "MultiTaskConfig",
    "RankingNetwork",
    "RankingOutput",
    "RankingTask",
    "CatalogueConfig",
    "RegularisationConfig",
    "TransformerConfig",
    "build_model",
    "export_torchscript",
]
