"""The embedded MQTT broker: amqtt with mqchat's authentication and topic authorization."""
