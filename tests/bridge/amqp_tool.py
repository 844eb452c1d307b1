#!/usr/bin/env python3
"""Small RabbitMQ helpers for the bridge tests (pika).

    amqp_tool.py PORT publish QUEUE BODY [MESSAGE_ID]   one raw message (declares QUEUE as the seed does)
    amqp_tool.py PORT drain QUEUE                        gets and acks every message; prints them as JSON
    amqp_tool.py PORT count QUEUE                        messages ready in QUEUE
"""
import json
import sys

import pika

port, cmd, queue = int(sys.argv[1]), sys.argv[2], sys.argv[3]
connection = pika.BlockingConnection(pika.ConnectionParameters(host='127.0.0.1', port=port))
channel = connection.channel()
if cmd == 'publish':
    channel.queue_declare(queue=queue)
    props = pika.BasicProperties(message_id=sys.argv[5]) if len(sys.argv) > 5 else None
    channel.basic_publish(exchange='', routing_key=queue, body=sys.argv[4], properties=props)
    print(json.dumps({'published': 1}))
elif cmd == 'drain':
    out = []
    while True:
        method, props, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            break
        out.append({'body': body.decode('utf-8', 'replace'), 'headers': {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (props.headers or {}).items()}})
    print(json.dumps(out))
elif cmd == 'count':
    q = channel.queue_declare(queue=queue, passive=True)
    print(json.dumps({'ready': q.method.message_count}))
connection.close()
