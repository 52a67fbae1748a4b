//! The citizen portal: server-rendered pages, served by the same binary and built on the same services as the API
//! (no second implementation of any rule), usable without JavaScript. This first part is the public catalogue:
//! search by words and unit, and each procedure's page (description, documents, fees, trust level, processing
//! time). German by default; English by `?lang=en`, a remembered choice, or `Accept-Language`.
//!
//! Every page goes out with a strict Content-Security-Policy (no inline script or style), the stylesheet is embedded
//! in the binary and served with a long cache lifetime.

mod i18n;
mod pages;

use std::sync::Arc;

use actix_web::web::{self, Data, ServiceConfig};
use amtsweg_catalogue::CatalogueService;
use minijinja::Environment;

pub use i18n::PortalLang;

/// The portal's service: templates and the services its pages read.
#[derive(Clone)]
pub struct Portal {
    catalogue: CatalogueService,
    templates: Arc<Environment<'static>>,
}

impl Portal {
    pub fn new(catalogue: CatalogueService) -> Result<Portal, String> {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../templates/base.html")),
            ("index.html", include_str!("../templates/index.html")),
            ("procedure.html", include_str!("../templates/procedure.html")),
            ("not_found.html", include_str!("../templates/not_found.html")),
        ] {
            env.add_template(name, source).map_err(|err| err.to_string())?;
        }
        Ok(Portal {
            catalogue,
            templates: Arc::new(env),
        })
    }
}

impl amtsweg_module::Module for Portal {
    fn name(&self) -> &'static str {
        "portal"
    }

    fn app_data(&self, cfg: &mut ServiceConfig) {
        cfg.app_data(Data::new(self.clone()));
    }

    /// The pages are not part of the API document.
    fn unlisted_routes(&self, cfg: &mut ServiceConfig) {
        cfg.route("/", web::get().to(pages::index))
            .route("/leistungen/{id}", web::get().to(pages::procedure))
            .route("/assets/portal.css", web::get().to(pages::stylesheet));
    }
}
