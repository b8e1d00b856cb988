"""API routes."""
from django.urls import path

from . import views

urlpatterns = [
    path("health", views.health),
    path("categories", views.categories),
    path("products", views.products),
    path("products/popular", views.popular),
    path("products/<int:product_id>", views.product_detail),
    path("quote", views.quote),
    path("orders", views.create_order),
    path("orders/<int:order_id>", views.order_detail),
    path("orders/<int:order_id>/cancel", views.cancel_order),
]
