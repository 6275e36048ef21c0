"""The paper's claims as data (config/claims.yaml), tested on the scores files and run records: one verdict per
claim (holds, fails, inconclusive) with the reproduced effect, its interval and the runs used."""
