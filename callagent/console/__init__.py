"""The operator's web console (`callagent console`): every call live, the approval queue,
the refusal log, the do-not-call list and the dial policy, in a browser.

`app` builds the pages over a CallService of its own on the shared call store; `auth` holds
sign-in, sessions and CSRF; `guard` the security headers; `present` how things are shown;
`server` runs it with uvicorn.
"""
