#!/usr/bin/env python3
"""The second seed's producer, as the seed wrote it: a score update is one
basic_publish of a JSON body with the member and the score to the queue
'rank_update' through the default exchange; pika sets no message-id. Podium
receives these messages through podium-bridge, unchanged.

Only the harness around it is new: the port, the queue name and the number
of updates come from the command line; members and scores are drawn with a
fixed seed; `--message-ids` adds an AMQP message-id (what a producer adds
to get exactly-once delivery through the bridge); the sums sent per member
are printed as one JSON line for the test to compare.

    seed2_producer.py PORT [--queue rank_update] [--updates N] [--members N] [--message-ids PREFIX]
"""
import argparse
import json
import random

import pika

p = argparse.ArgumentParser()
p.add_argument('port', type=int)
p.add_argument('--queue', default='rank_update')
p.add_argument('--updates', type=int, default=100)
p.add_argument('--members', type=int, default=10)
p.add_argument('--message-ids', default=None)
p.add_argument('--seed', type=int, default=2)
args = p.parse_args()

# --- the seed's code (port and queue parameterised) -------------------------
connection = pika.BlockingConnection(pika.ConnectionParameters(host='127.0.0.1', port=args.port))
channel = connection.channel()
channel.queue_declare(queue=args.queue)


def update_score(member, score, properties=None):
    channel.basic_publish(exchange='', routing_key=args.queue,
                          body=json.dumps({'member': member, 'score': score}),
                          properties=properties)
# ----------------------------------------------------------------------------


rng = random.Random(args.seed)
sums = {}
for i in range(args.updates):
    member = f'player{rng.randrange(args.members)}'
    score = rng.randint(1, 100)
    sums[member] = sums.get(member, 0) + score
    props = pika.BasicProperties(message_id=f'{args.message_ids}-{i}') if args.message_ids else None
    update_score(member, score, props)
connection.close()
print(json.dumps({'sums': sums, 'sent': args.updates}))
