"""Training tasks on one harness: each task a folder, registered in :mod:`sdrl.tasks.registry`.

======================  ===================================================================
module                  role
======================  ===================================================================
:mod:`.registry`        the task list; :class:`~sdrl.tasks.registry.TaskSpec`
:mod:`.config`          :class:`~sdrl.tasks.config.TrainConfig`, options declared once
:mod:`.base`            :class:`~sdrl.tasks.base.BaseTask`, the shared Lightning hooks
:mod:`.harness`         Trainer, run folder, loggers and checkpoint I/O; knows no task
:mod:`.loading`         deterministic, resumable loaders shared by the tasks
:mod:`.checkpoints`     atomic checkpoint I/O, ``last.ckpt`` / ``best.ckpt``
:mod:`.run_dir`         fresh / overwrite / resume rules of a run folder
:mod:`.optim`           optimisers and per-step schedules
:mod:`.seeding`         seeds and generator states (exact resume)
:mod:`.loggers`         CSV always, W&B offline, throughput
``pretrain/``           self-supervised pretraining (``sdrl pretrain``)
``change/``             change-detection finetuning (``sdrl finetune``)
``crop/``               the hierarchical crop classifier (``sdrl crop train``)
======================  ===================================================================

No task imports a sibling task; nothing outside ``sdrl.tasks`` and the command line imports a
task. Importing this package imports neither Lightning nor torch.
"""
