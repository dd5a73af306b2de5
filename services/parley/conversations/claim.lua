-- Claims a new message for a conversation, unless another call threaded it first. In the same step (the two
-- keys share the message's hash slot) it reads whether a reply is already waiting for this message, so a
-- reply registering itself at the same moment is either seen here or sees this message (await.lua).
-- KEYS: message index, awaiting key of the message. ARGV: conversation id.
-- Returns {the conversation that already had the message or '', the conversation of a waiting reply or ''}.
local prior = redis.call('GET', KEYS[1])
if not prior then redis.call('SET', KEYS[1], ARGV[1]) end
return {prior or '', redis.call('GET', KEYS[2]) or ''}
