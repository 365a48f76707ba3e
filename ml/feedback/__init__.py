"""Feedback from the shop front: what ops see of the served lists' impressions and of the demand stock lost, and
how a policy that never ran is judged from the logs of one that did (:mod:`ml.feedback.ope`)."""
