"""veilchain.chain"""
