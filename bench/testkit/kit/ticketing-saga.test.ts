import { defineSuite } from '../suite.js';

defineSuite('kit', 'ticketing-saga');
