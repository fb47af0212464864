"""Images uploaded from the browser (profile avatars, catalog artwork): formats, direct uploads, variants.

The pieces are parametrised by an UploadPolicy (size limit, error codes), so each user keeps its own
codes and folders while the checks themselves exist once.
"""
