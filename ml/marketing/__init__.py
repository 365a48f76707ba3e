"""Marketing: personalised messages generated from facts, checked against them before anything is sent.

- :mod:`ml.marketing.facts`: the fact sheet of a customer (profile, segment) and of the products a message may
  feature (the customer's served list, in stock, with price and the day's promotion);
- :mod:`ml.marketing.targeting`: who gets which campaign under the playbook, with frequency caps and opt-outs;
- :mod:`ml.marketing.writer`: the words (template families x campaigns, filled from the fact sheet);
- :mod:`ml.marketing.grounding`: every factual span of a message checked against its fact sheet; a message
  that fails is blocked, never sent;
- :mod:`ml.marketing.messages`: the day's messages for the ``marketing/messages`` asset;
- :mod:`ml.marketing.bandit`: which template family and offer level each customer gets (linear Thompson
  Sampling over the logged answers, propensities recorded);
- :mod:`ml.marketing.policy`: the ``marketing/message_policy`` asset's day: learn, judge off-policy, adopt or keep;
- :mod:`ml.marketing.feedback`: what the sent messages earned against the held-out customers.
"""
