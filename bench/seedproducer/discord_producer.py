"""The seed's producer, for the benchmark: a discord.py bot whose on_message
sends each message to Kafka with kafka-python, as JSON with the four fields of
the seed's example:

    {"author_id": "...", "author_name": "...", "content": "...",
     "message_timestamp": "2025-11-07 18:00:00.000"}

The seed gives the fields and the libraries, not the code; this is the plain
way to write it: default intents plus message_content, a KafkaProducer with its
default settings and a JSON value serializer, producer.send() in on_message
without waiting for the broker.

What the benchmark adds, outside on_message: the Discord endpoints (REST base
and gateway URL, to point the bot at the simulator instead of discord.com),
"ready" on stdout once discord.py fired on_ready, and a clean stop on SIGTERM
or SIGINT (the producer is flushed before exit). The token comes from
$DISCORD_TOKEN.

Usage: discord_producer.py --brokers HOST:PORT --topic TOPIC
                           [--discord-api-url URL --gateway-url URL]
"""

import argparse
import asyncio
import json
import os
import signal
import sys

import discord
import yarl
from discord.gateway import DiscordWebSocket
from kafka import KafkaProducer


def main():
    ap = argparse.ArgumentParser(description="The seed's producer: discord.py on_message -> kafka-python.")
    ap.add_argument("--brokers", default="localhost:9092", help="Kafka bootstrap servers")
    ap.add_argument("--topic", default="discord_messages", help="topic the messages are sent to")
    ap.add_argument("--discord-api-url", help="REST base instead of https://discord.com/api/v10 (e.g. a simulator's)")
    ap.add_argument("--gateway-url", help="gateway URL instead of wss://gateway.discord.gg/ (e.g. a simulator's)")
    args = ap.parse_args()
    token = os.environ.get("DISCORD_TOKEN", "")
    if not token:
        sys.exit("discord_producer: set DISCORD_TOKEN to the bot's token")
    if args.discord_api_url:
        discord.http.Route.BASE = args.discord_api_url.rstrip("/")
    if args.gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(args.gateway_url)

    producer = KafkaProducer(
        bootstrap_servers=args.brokers.split(","),
        value_serializer=lambda v: json.dumps(v).encode("utf-8"),
    )
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)

    @client.event
    async def on_ready():
        print("ready", flush=True)

    @client.event
    async def on_message(message):
        data = {
            "author_id": str(message.author.id),
            "author_name": message.author.name,
            "content": message.content,
            "message_timestamp": message.created_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }
        producer.send(args.topic, data)

    async def run():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(client.close()))
        async with client:
            await client.start(token)

    try:
        asyncio.run(run())
    finally:
        producer.flush()
        producer.close()


if __name__ == "__main__":
    main()
