// Renders /openapi.json with Swagger UI (swagger-ui-dist 5.35.0, Apache-2.0).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#api", deepLinking: true, tryItOutEnabled: false });
