import { defineSuite } from '../suite.js';

defineSuite('kit', 'migration-saga');
