"""Kafka: topics, the Faust worker, and the producer and incident-consumer commands.

The only package that imports Faust or the Kafka client libraries.
"""
