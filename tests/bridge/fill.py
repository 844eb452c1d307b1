#!/usr/bin/env python3
"""Fills a broker fast for scripts/bridge-perf.mjs (not the seeds' one-by-one
producers: a pipelined XADD, or basic_publish in a tight loop), with members
drawn from a fixed set; prints the per-member counts as one JSON line.

    fill.py redis PORT STREAM N [--members M]
    fill.py amqp PORT QUEUE N [--members M]      (each message with a message-id)
"""
import argparse
import json
import random
import time

p = argparse.ArgumentParser()
p.add_argument('broker', choices=['redis', 'amqp'])
p.add_argument('port', type=int)
p.add_argument('name')
p.add_argument('n', type=int)
p.add_argument('--members', type=int, default=1000)
args = p.parse_args()
rng = random.Random(7)
members = [f'm{rng.randrange(args.members)}' for _ in range(args.n)]
counts = {}
for m in members:
    counts[m] = counts.get(m, 0) + 1
t = time.time()
if args.broker == 'redis':
    import redis
    r = redis.Redis(host='127.0.0.1', port=args.port)
    for i in range(0, args.n, 1000):
        pipe = r.pipeline(transaction=False)
        for m in members[i:i + 1000]:
            pipe.xadd(args.name, {'type': m, 'timestamp': t})
        pipe.execute()
else:
    import pika
    conn = pika.BlockingConnection(pika.ConnectionParameters(host='127.0.0.1', port=args.port))
    ch = conn.channel()
    ch.queue_declare(queue=args.name)
    for i, m in enumerate(members):
        ch.basic_publish(exchange='', routing_key=args.name, body=json.dumps({'member': m, 'score': 1}),
                         properties=pika.BasicProperties(message_id=f'{args.name}-{i}'))
    conn.close()
print(json.dumps({'counts': counts, 'sent': args.n, 'produce_s': round(time.time() - t, 2)}))
