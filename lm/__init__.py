"""fairgym's model layer: loading a causal LM, batched choice scoring, prompts, generation limits, the judge.

Below agents, analysis and training, above envs (it renders env observations into prompts):

- ``models``: ``load_model`` (the embedded SmolLM2 default, a local folder or a hub id, with a PEFT adapter);
- ``scoring``: the prefix KV cache and batched choice scoring (``score_choices``);
- ``prompting``: env observations as chat messages, rendered through the chat template;
- ``generation``: the tokens that end an assistant turn and the context window, shared by evaluation and training;
- ``judge``: the LLM judge (``toxicity_scorer="judge:<model>"``); ``classifier``: a local text classifier scorer.

Importing this package loads nothing heavy; each module imports torch when it is imported.
"""
