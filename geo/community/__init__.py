"""Community governance (社区治理): the work around cases."""
