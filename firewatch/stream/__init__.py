"""Kafka: topics, the producer and incident-consumer commands (and, next, the Faust agents).

The only package that imports the Kafka client libraries.
"""
