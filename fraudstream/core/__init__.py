"""The detection core: records, parsing, profiles, features, rules, model and detector.

Pure Python plus River, orjson and numpy: no Kafka, no Faust, no settings. The worker, the
evaluator and the benchmarks all call :meth:`fraudstream.core.detector.Detector.process`.
"""
