"""Keeps the Redis product cache coherent with the database."""
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import cache
from .models import Product


@receiver(post_save, sender=Product)
@receiver(post_delete, sender=Product)
def drop_cached_product(sender, instance, **kwargs):
    cache.invalidate_product(instance.pk)
