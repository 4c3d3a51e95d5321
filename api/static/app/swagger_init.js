// Swagger UI for /docs, drawn from the vendored bundle (no CDN); the page's CSP forbids inline
// scripts, so the start-up lives here and reads its settings from the page's data attributes.
(function () {
  "use strict";
  var host = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: host.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    validatorUrl: null,  // the default badge asks validator.swagger.io: nothing leaves the intranet
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
