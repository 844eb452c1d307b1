#!/usr/bin/env python3
"""The first seed's producer, as the seed wrote it: every user action is one
XADD into the Redis stream 'user_actions' with its type and a timestamp, and
the seed's consumer ranked the types with ZINCRBY('rankings', 1, metric).
Podium receives these entries through podium-bridge, unchanged.

Only the harness around it is new: the Redis port and stream name come from
the command line, the actions are drawn in a fixed random order, and the
counts sent are printed as one JSON line for the test to compare.

    seed1_producer.py PORT [--stream user_actions] [--like N] [--order N] [--comment N]
"""
import argparse
import json
import random
import time

import redis

p = argparse.ArgumentParser()
p.add_argument('port', type=int)
p.add_argument('--stream', default='user_actions')
p.add_argument('--like', type=int, default=0)
p.add_argument('--order', type=int, default=0)
p.add_argument('--comment', type=int, default=0)
p.add_argument('--seed', type=int, default=1)
args = p.parse_args()

r = redis.Redis(host='127.0.0.1', port=args.port, decode_responses=True)


# --- the seed's code (stream name parameterised) ---------------------------
def track_action(action_type):
    r.xadd(args.stream, {'type': action_type, 'timestamp': time.time()})
# ----------------------------------------------------------------------------


actions = ['like'] * args.like + ['order'] * args.order + ['comment'] * args.comment
random.Random(args.seed).shuffle(actions)
for a in actions:
    track_action(a)
print(json.dumps({'like': args.like, 'order': args.order, 'comment': args.comment, 'sent': len(actions)}))
