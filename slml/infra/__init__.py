"""Pulumi ComponentResources, one per target, with pure helpers (naming, sizing, IAM
policies) beside them: ``aws_lambda`` (``slml:aws:LambdaModel``) + ``aws_policies``,
``sagemaker``, ``cloudrun``, ``azure``. Importing this package imports no cloud SDK."""
