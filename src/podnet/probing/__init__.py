"""`podnet probe`'s traffic: real packets from inside source pods' namespaces, many at once
on one asyncio loop, with every outcome told apart (reply, refused, rejected, timeout). The
expectations are the policy engine's (podnet.policy.expectations)."""
