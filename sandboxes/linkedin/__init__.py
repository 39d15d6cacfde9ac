"""A LinkedIn Community Management API server on loopback: organization pages, posts, images, videos, OAuth."""
