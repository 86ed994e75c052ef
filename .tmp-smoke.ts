import 'reflect-metadata';
import { buildApiSchema, printApiSchema } from './src/api/schema/index.ts';
const s = await buildApiSchema();
console.log(printApiSchema(s));
