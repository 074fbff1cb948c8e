/** `GET /v1/models` and `GET /v1/models/{id}`. */
import { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ModelRegistry, ResolvedModel } from '../gateway/model-registry.js';
import type { ModelObject } from '../openai/responses.js';

function toModelObject(model: ResolvedModel): ModelObject {
  return { id: model.config.name, object: 'model', created: model.created, owned_by: model.config.owned_by };
}

export function modelsRoutes(models: ModelRegistry): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.get('/', (context) => context.json({ object: 'list', data: models.list().map(toModelObject) }));
  routes.get('/:id{.+}', (context) => context.json(toModelObject(models.resolve(context.req.param('id')))));
  return routes;
}
